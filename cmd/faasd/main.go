// Command faasd runs functions and microservices as supervised OS processes behind one
// port (`faasd serve`), and is the client of its own API.
package main

import (
	"context"
	"fmt"
	"os"

	"faasd/supervisor"
)

func main() {
	actAsShim()
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "faasd:", err)
		os.Exit(exitCode(err))
	}
}

// actAsShim is the spawn shim when this binary was re-executed as one inside a replica's
// new namespaces, which must act before anything else; otherwise it returns.
func actAsShim() {
	if len(os.Args) > 1 && os.Args[1] == supervisor.ShimArg {
		err := supervisor.Shim()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(127)
	}
}
