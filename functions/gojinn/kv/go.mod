module gojinn.example/kv

go 1.24
