module gojinn.example/bench-tax

go 1.24
