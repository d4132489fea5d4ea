module sostestcontract

go 1.24
