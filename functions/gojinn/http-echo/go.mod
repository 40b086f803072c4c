module gojinn.example/http-echo

go 1.24
