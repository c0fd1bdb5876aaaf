package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
}
