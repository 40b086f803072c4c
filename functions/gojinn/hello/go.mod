module gojinn.example/hello

go 1.24
