// Package watchdog is faasd's classic mode: "any process is a function".
//
// It owns one replica's HTTP server, run as `faasd watchdog` inside that replica: for every
// invocation it forks the command line in the `fprocess` environment variable, feeds the
// request body to the child's stdin, and answers with what the child wrote, following the
// contract of OpenFaaS's classic watchdog: the Http_* environment, the status codes, the
// X-Duration-Seconds header, the exact log lines the certifier greps for, and the lock
// file `$TMPDIR/.lock` that tells whoever started the replica it is ready. It departs from
// that contract in one place: a command that cannot run (not found, not executable) stops
// it at start, before the lock file, instead of failing every request with a 500.
//
// It must not know about the daemon. Everything it learns comes from its environment (PORT,
// fprocess, TMPDIR and the classic watchdog's knobs) and everything it says goes to its HTTP
// clients, its log writer and the lock file. It never reaches back to the gateway, the
// supervisor or the scaler, so the same binary behaves the same whoever runs it.
//
// Each child runs in its own process group so that a timeout, a vanished client or a forced
// shutdown can kill everything the function started, and every child is reaped before the
// request that forked it returns.
package watchdog
