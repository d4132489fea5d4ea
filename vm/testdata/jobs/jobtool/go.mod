module sostestjob

go 1.24
