// tax-go: the `tax` example (functions/tax) in Go, for the standard Go
// toolchain (GOOS=wasip1 GOARCH=wasm). A Gojinn-style wasi-json function:
// the request arrives as JSON on stdin, the response goes as JSON to
// stdout. Body {"id": string or number, "value": number} -> 200
// {"order_id": id, "total_final": value * 1.15} rounded to 2 decimals;
// any other body -> 400 {"error": ...}.
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// Request is what the host writes to stdin (fields not needed are ignored).
type Request struct {
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

// Response is what the host reads from stdout.
type Response struct {
	Status  int                 `json:"status"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

type order struct {
	ID    json.RawMessage `json:"id"`
	Value *float64        `json:"value"`
}

const taxRate = 0.15

func main() {
	var req Request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintf(os.Stderr, "the request on stdin is not JSON: %v\n", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(handle(req))
}

func handle(req Request) Response {
	var o order
	err := json.Unmarshal([]byte(req.Body), &o)
	if err == nil && (o.Value == nil || !validID(o.ID)) {
		err = fmt.Errorf("missing or mistyped field")
	}
	if err != nil {
		return reply(400, map[string]any{"error": "body must be {\"id\": string or number, \"value\": number}: " + err.Error()})
	}
	total := math.Round(*o.Value*(1+taxRate)*100) / 100
	if math.IsInf(total, 0) || math.IsNaN(total) {
		return reply(400, map[string]any{"error": "value is out of range"})
	}
	return reply(200, map[string]any{"order_id": o.ID, "total_final": total})
}

// validID accepts a JSON string or number.
func validID(id json.RawMessage) bool {
	var v any
	if json.Unmarshal(id, &v) != nil {
		return false
	}
	switch v.(type) {
	case string, float64:
		return true
	}
	return false
}

func reply(status int, body map[string]any) Response {
	b, _ := json.Marshal(body)
	return Response{
		Status:  status,
		Headers: map[string][]string{"Content-Type": {"application/json"}},
		Body:    string(b),
	}
}
