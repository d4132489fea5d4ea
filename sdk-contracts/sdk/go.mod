module github.com/sos-kernel/sos/sdk-contracts/sdk

go 1.24
