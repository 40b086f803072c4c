module wasmgate.example/tax-go

go 1.24
