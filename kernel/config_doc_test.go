package kernel

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestOperationsDocListsEveryConfigKey: docs/operations.md documents every
// config.toml key (a row of its reference table starts with the key).
func TestOperationsDocListsEveryConfigKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		key, _, _ := strings.Cut(typ.Field(i).Tag.Get("toml"), ",")
		if key == "" || key == "-" {
			continue
		}
		if !strings.Contains(string(doc), "\n| `"+key+"` |") {
			t.Errorf("docs/operations.md: config key %q is not in the config.toml reference", key)
		}
	}
}
