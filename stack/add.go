package stack

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"faasd/config"
	"faasd/internal/atomicfile"
)

// ErrExists is returned by AddFunction for a name the file already has.
var ErrExists = errors.New("already in the stack file")

// newFileHeader starts a stack file that `faasd new` creates.
const newFileHeader = `# faasd.toml: the functions of this folder. ` + "`faasd up`" + ` builds and deploys them to a
# running daemon; ` + "`faasd serve -f faasd.toml`" + ` serves them itself.
`

// AddFunction appends a [functions.NAME] table to the stack file at path, creating the
// file when it does not exist. The file keeps its text, comments and layout, and gains the
// table at the end. The result must parse, or the file is left as it was. The new text
// replaces the file by a rename, as editors do, so a daemon serving it reloads once.
func AddFunction(path, name, table string) error {
	old, err := os.ReadFile(path)
	mode := os.FileMode(0o644)
	switch {
	case errors.Is(err, os.ErrNotExist):
		old = []byte(newFileHeader)
	case err != nil:
		return fmt.Errorf("read stack file: %w", err)
	default:
		if info, err := os.Stat(path); err == nil {
			mode = info.Mode().Perm()
		}
		cfg, err := config.Parse(path, old)
		if err != nil {
			return err
		}
		if _, ok := cfg.Functions[name]; ok {
			return fmt.Errorf("%s: functions.%s: %w", path, name, ErrExists)
		}
	}
	text := string(old)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	text += "\n" + strings.TrimLeft(table, "\n")
	if _, err := config.Parse(path, []byte(text)); err != nil {
		return fmt.Errorf("adding functions.%s would break the file: %w", name, err)
	}
	if err := atomicfile.Write(path, []byte(text), mode); err != nil {
		return fmt.Errorf("stack file: %w", err)
	}
	return nil
}
