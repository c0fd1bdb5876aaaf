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
	// The spawn shim must act before anything else: it is this binary re-executed inside
	// a replica's new namespaces.
	if len(os.Args) > 1 && os.Args[1] == supervisor.ShimArg {
		err := supervisor.Shim()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(127)
	}
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "faasd:", err)
		os.Exit(exitCode(err))
	}
}
