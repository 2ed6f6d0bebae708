// Command ferretdb is a minimal wrapper around the embeddable FerretDB package
// (github.com/FerretDB/FerretDB/ferretdb), used instead of upstream's
// cmd/ferretdb, which panics when built with `go install` because its
// generated build/version/version.txt is missing (FerretDB issue 2982).
//
// Every flag can also be set through an environment variable (shown in
// -help); an explicit flag wins over the environment.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

const ferretdbModule = "github.com/FerretDB/FerretDB"

// envOr returns the value of the environment variable key, or def if it is unset or empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// ferretdbVersion returns the FerretDB module version linked into this binary.
func ferretdbVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == ferretdbModule {
				if d.Replace != nil {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	return "unknown"
}

// prepareSQLiteURL makes sure the URL's path ends with "/" and that the
// directory exists (FerretDB requires an existing directory).
func prepareSQLiteURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("invalid --sqlite-url %q: %w", raw, err)
	}
	if u.Scheme != "file" {
		return "", fmt.Errorf("invalid --sqlite-url %q: expected file: scheme", raw)
	}
	p := u.Path
	if p == "" {
		p = u.Opaque
	}
	if p == "" {
		return "", fmt.Errorf("invalid --sqlite-url %q: empty path", raw)
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", fmt.Errorf("cannot create SQLite directory %q: %w", p, err)
	}
	out := "file:" + p
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out, nil
}

func main() {
	fs := flag.NewFlagSet("ferretdb", flag.ContinueOnError)
	listenAddr := fs.String("listen-addr", envOr("FERRETDB_LISTEN_ADDR", "127.0.0.1:27017"),
		"TCP listen address, empty to disable (env FERRETDB_LISTEN_ADDR)")
	listenUnix := fs.String("listen-unix", envOr("FERRETDB_LISTEN_UNIX", ""),
		"Unix socket path, empty to disable (env FERRETDB_LISTEN_UNIX)")
	handler := fs.String("handler", envOr("FERRETDB_HANDLER", "sqlite"),
		"backend handler: sqlite or postgresql (env FERRETDB_HANDLER)")
	sqliteURL := fs.String("sqlite-url", envOr("FERRETDB_SQLITE_URL", "file:data/"),
		"SQLite URI of a directory for the sqlite handler; created if missing (env FERRETDB_SQLITE_URL)")
	postgresqlURL := fs.String("postgresql-url", envOr("FERRETDB_POSTGRESQL_URL", "postgres://127.0.0.1:5432/ferretdb"),
		"PostgreSQL URL for the postgresql handler (env FERRETDB_POSTGRESQL_URL)")
	logLevel := fs.String("log-level", envOr("FERRETDB_LOG_LEVEL", "info"),
		"log level: debug, info, warn or error (env FERRETDB_LOG_LEVEL)")
	showVersion := fs.Bool("version", false, "print version and exit")

	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ferretdb: unexpected arguments: %v\n", fs.Args())
		os.Exit(2)
	}

	if *showVersion {
		fmt.Printf("ferretdb %s (embedded, %s)\n", ferretdbVersion(), runtime.Version())
		return
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: invalid --log-level %q\n", *logLevel)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(logger)

	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listenAddr, Unix: *listenUnix},
		Logger:   logger,
		Handler:  *handler,
	}
	switch *handler {
	case "sqlite":
		u, err := prepareSQLiteURL(*sqliteURL)
		if err != nil {
			logger.Error(err.Error())
			os.Exit(1)
		}
		cfg.SQLiteURL = u
	case "postgresql", "pg":
		cfg.PostgreSQLURL = *postgresqlURL
	default:
		logger.Error("unknown --handler (want sqlite or postgresql)", "handler", *handler)
		os.Exit(2)
	}

	// First SIGINT/SIGTERM cancels ctx for a graceful shutdown (FerretDB gives
	// connected clients a few seconds); after that, default signal handling is
	// restored so a second signal kills the process immediately.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
		logger.Info("signal received, shutting down")
	}()

	f, err := ferretdb.New(cfg)
	if err != nil {
		logger.Error("failed to start FerretDB", "error", err)
		os.Exit(1)
	}

	logger.Info("FerretDB running", "version", ferretdbVersion(), "handler", cfg.Handler,
		"listen_addr", cfg.Listener.TCP, "listen_unix", cfg.Listener.Unix,
		"sqlite_url", cfg.SQLiteURL, "pid", os.Getpid())

	if err := f.Run(ctx); err != nil {
		logger.Error("FerretDB stopped with error", "error", err)
		os.Exit(1)
	}
	logger.Info("FerretDB stopped")
}
