// Command custos is the Custos network video recorder. Each subcommand lives
// in its own file; run "custos help" for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
)

// command is one subcommand: its name, a one-line summary, and the function
// that runs it with the remaining arguments.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env carries the process's outside world so subcommands can be tested
// without touching os.*.
type env struct {
	stdout io.Writer
	stderr io.Writer
	stdin  io.Reader
	log    *slog.Logger
	// env, when set, replaces the process environment (tests).
	env map[string]string
}

// getenv reads an environment variable (from e.env when set).
func (e *env) getenv(k string) string {
	if e.env != nil {
		return e.env[k]
	}
	return os.Getenv(k)
}

func commands() []command {
	return []command{
		{"demo", "simulated cameras recorded, with the web UI on 127.0.0.1 (prints the login)", runDemo},
		{"sim", "serve simulated RTSP cameras", runSim},
		{"probe", "describe a camera's streams as JSON (optionally receive media for N seconds)", runProbe},
		{"serve", "record the configured cameras and serve the API", runServe},
		{"export", "write a camera's time range as an MP4 (from the data directory or a server)", runExport},
		{"check", "verify recordings against the index and their hash chains; --repair rebuilds the index", runCheck},
		{"user", "manage users, roles, camera grants and API tokens", runUser},
		{"audit", "verify or list the audit log", runAudit},
		{"key", "show the node's public signing key (hash chains, evidence)", runKey},
		{"verify", "check an evidence export offline: its video, hash chain and signature", runVerify},
		{"bench", "measure performance: bench sim, bench record, bench playback", runBench},
	}
}

// errUsage marks errors caused by the command line; main exits 2 for them.
var errUsage = errors.New("usage")

// exitError makes main exit with code, after printing err unless it is
// nil (the command has said what there is to say), for commands whose
// exit codes say more than success or failure (verify, export).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin}
	if path := os.Getenv("CUSTOS_CPUPROFILE"); path != "" {
		// For benchmarks: profile the whole run of this process.
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "custos: CUSTOS_CPUPROFILE: %v\n", err)
			os.Exit(2)
		}
		pprof.StartCPUProfile(f)
		code := run(ctx, e, os.Args[1:])
		pprof.StopCPUProfile()
		f.Close()
		os.Exit(code)
	}
	if path := os.Getenv("CUSTOS_MEMPROFILE"); path != "" {
		// For benchmarks: the live heap when the command ends.
		code := run(ctx, e, os.Args[1:])
		if f, err := os.Create(path); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
		os.Exit(code)
	}
	os.Exit(run(ctx, e, os.Args[1:]))
}

func run(ctx context.Context, e *env, args []string) int {
	level := slog.LevelInfo
	if os.Getenv("CUSTOS_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var ee *exitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			if ee.err != nil {
				fmt.Fprintf(e.stderr, "custos %s: %s\n", c.name, oneLine(ee.err.Error()))
			}
			return ee.code
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(e.stderr, "custos %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(e.stderr, "custos %s: %s\n", c.name, oneLine(err.Error()))
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "custos: unknown command %q (run 'custos help')\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Custos: an accountable network video recorder.")
	fmt.Fprintln(w, "\nUsage: custos COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'custos COMMAND --help' for a command's flags.")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// parseFlags parses args with fs, allowing flags after positional
// arguments (custos probe URL --seconds 5). Flag errors wrap errUsage.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// helpFlags prints fs's flags when -h/--help was given.
func helpFlags(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "Usage: custos %s\n\nFlags:\n", synopsis)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// parseNoArgs parses flags for a command that takes no positional
// arguments, printing help for -h/--help (then returning flag.ErrHelp).
func parseNoArgs(e *env, fs *flag.FlagSet, args []string, synopsis string) error {
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		helpFlags(e.stdout, fs, synopsis)
		return err
	}
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	return nil
}
