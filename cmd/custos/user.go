package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/store/sqlite"
	"golang.org/x/term"
)

const userUsage = `custos user COMMAND --config FILE ...

Commands (passwords are read from the terminal without echo, or from the
first line of standard input when it is not a terminal):
  list                               list users, their roles and grants
  add NAME [--role R] [--grant CAMERA=PERMS]...
                                     create a user (role viewer, operator or admin)
  del NAME                           delete a user, their sessions and tokens
  passwd NAME                        set a user's password (ends their sessions)
  role NAME ROLE                     change a user's role
  grant NAME CAMERA PERMS            set what NAME may do with CAMERA ("*" is every
                                     camera): live, recordings, export, lock, all or none
  token NAME --name LABEL [--ttl D]  make an API token (printed once)
  unlock NAME                        forget NAME's failed logins, so that addresses
                                     that failed may try again (a running server
                                     applies it within 2 seconds)
Every change is written to the audit log.`

// runUser implements "custos user ...": account management on the data
// directory's index, usable while custos serve runs.
func runUser(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(e.stdout, userUsage)
		if len(args) == 0 {
			return fmt.Errorf("%w: missing command", errUsage)
		}
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "", "the YAML configuration custos serve uses")
	role := fs.String("role", "viewer", "role: viewer, operator or admin")
	var grants []string
	fs.Func("grant", "CAMERA=PERMS, repeatable (PERMS: live,recordings,export,lock or all)", func(v string) error {
		grants = append(grants, v)
		return nil
	})
	tokName := fs.String("name", "", "the token's label (what uses it)")
	ttl := fs.String("ttl", "", "token lifetime (e.g. 90d, 12h); default: never expires")
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(e.stdout, userUsage)
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	want := map[string]int{"list": 0, "add": 1, "del": 1, "passwd": 1, "role": 2, "grant": 3, "token": 1, "unlock": 1}
	n, ok := want[sub]
	if !ok {
		return fmt.Errorf("%w: unknown command %q\n%s", errUsage, sub, userUsage)
	}
	if len(pos) != n {
		return fmt.Errorf("%w: user %s takes %d argument(s), got %d\n%s", errUsage, sub, n, len(pos), userUsage)
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
	}
	idx, err := sqlite.Open(filepath.Join(cfg.DataDir, "index.db"))
	if err != nil {
		return fmt.Errorf("open index: %w", err)
	}
	defer idx.Close()
	svc, err := auth.New(idx, auth.Options{})
	if err != nil {
		return err
	}
	log, err := audit.OpenWith(ctx, idx, filepath.Join(cfg.DataDir, "audit.log"), nil, audit.Options{Logger: e.log})
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	defer log.Close()
	record := func(action string, detail map[string]string) error {
		detail["via"] = "custos user"
		if u := e.getenv("USER"); u != "" {
			detail["os_user"] = u
		}
		if _, err := log.Append(ctx, audit.Entry{Action: action, Addr: "local", Result: "ok", Detail: detail}); err != nil {
			return fmt.Errorf("the change was made but not audited: %w", err)
		}
		return nil
	}
	switch sub {
	case "list":
		users, err := idx.Users(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tROLE\tGRANTS\tCREATED")
		for _, u := range users {
			g := grantsText(u)
			if u.Role == auth.Admin {
				g = "(every camera)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.Role, g, u.Created.Local().Format(time.DateTime))
		}
		return tw.Flush()
	case "add":
		r, err := auth.ParseRole(*role)
		if err != nil {
			return fmt.Errorf("%w: --role: %v", errUsage, err)
		}
		g := map[string]auth.Perm{}
		for _, v := range grants {
			cam, perms, ok := strings.Cut(v, "=")
			p, err := auth.ParsePerms(perms)
			if !ok || err != nil {
				return fmt.Errorf("%w: --grant %q: want CAMERA=live,recordings,export,lock or all", errUsage, v)
			}
			g[cam] |= p
		}
		pw, err := readNewPassword(e, pos[0])
		if err != nil {
			return err
		}
		u, err := svc.AddUser(ctx, pos[0], r, pw, g)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "added user %s (%s)\n", u.Name, u.Role)
		return record(audit.UserAdd, map[string]string{"user": u.Name, "role": string(u.Role), "grants": grantsText(u)})
	case "del":
		if err := svc.Delete(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "deleted user %s\n", pos[0])
		return record(audit.UserDelete, map[string]string{"user": pos[0]})
	case "passwd":
		if _, err := idx.UserByName(ctx, pos[0]); err != nil {
			return fmt.Errorf("user %q: %w", pos[0], err)
		}
		pw, err := readNewPassword(e, pos[0])
		if err != nil {
			return err
		}
		if err := svc.SetPassword(ctx, pos[0], pw); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "password of %s changed; their sessions are ended\n", pos[0])
		return record(audit.UserChange, map[string]string{"user": pos[0], "change": "password"})
	case "role":
		r, err := auth.ParseRole(pos[1])
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		before, err := idx.UserByName(ctx, pos[0])
		if err != nil {
			return fmt.Errorf("user %q: %w", pos[0], err)
		}
		if _, err := svc.Update(ctx, pos[0], &r, nil); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s is now %s\n", pos[0], r)
		return record(audit.UserChange, map[string]string{"user": pos[0], "role": string(r), "was": string(before.Role)})
	case "grant":
		p := auth.Perm(0)
		if pos[2] != "none" {
			if p, err = auth.ParsePerms(pos[2]); err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
		}
		u, err := idx.UserByName(ctx, pos[0])
		if err != nil {
			return fmt.Errorf("user %q: %w", pos[0], err)
		}
		was := grantsText(u)
		g := map[string]auth.Perm{}
		for c, v := range u.Grants {
			g[c] = v
		}
		if p == 0 {
			delete(g, pos[1])
		} else {
			g[pos[1]] = p
		}
		if u, err = svc.Update(ctx, pos[0], nil, g); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", u.Name, grantsText(u))
		return record(audit.GrantChange, map[string]string{"user": u.Name, "grants": grantsText(u), "was": was})
	case "token":
		if *tokName == "" {
			return fmt.Errorf("%w: --name LABEL is required (say what will use the token)", errUsage)
		}
		var d time.Duration
		if *ttl != "" {
			if d, err = config.ParseDuration(*ttl); err != nil || d <= 0 {
				return fmt.Errorf("%w: --ttl %q: want a positive duration like 90d or 12h", errUsage, *ttl)
			}
		}
		minter := "local"
		if u := e.getenv("USER"); u != "" {
			minter += ":" + u
		}
		raw, t, err := svc.MintToken(ctx, minter, pos[0], *tokName, d)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, raw)
		fmt.Fprintf(e.stderr, "token %d for %s; shown once: send it as \"Authorization: Bearer TOKEN\"\n", t.ID, t.User)
		return record(audit.TokenAdd, map[string]string{"user": t.User, "token": t.Name, "id": fmt.Sprint(t.ID)})
	case "unlock":
		// The counters live in the server's memory: the server applies
		// the user_unlock entry when it sees it (api.WatchUnlocks).
		if _, err := idx.UserByName(ctx, pos[0]); err != nil {
			return fmt.Errorf("user %q: %w", pos[0], err)
		}
		if err := record(audit.UserUnlock, map[string]string{"user": pos[0]}); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "failed logins of %s forgotten (a running server applies it within %s)\n", pos[0], unlockPoll)
		return nil
	}
	return nil
}

func grantsText(u auth.User) string {
	var parts []string
	for _, g := range u.GrantList() {
		parts = append(parts, g.Camera+"="+g.Perms.String())
	}
	if len(parts) == 0 {
		return "(none)"
	}
	return strings.Join(parts, " ")
}

// readNewPassword reads a new password: twice without echo from a
// terminal, else the first line of standard input.
func readNewPassword(e *env, user string) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(e.stderr, "New password for %s: ", user)
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(e.stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return string(a), auth.ValidPassword(string(a))
	}
	if e.stdin == nil {
		return "", errors.New("no password: standard input is closed")
	}
	line, err := bufio.NewReader(io.LimitReader(e.stdin, auth.MaxPasswordLen+2)).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	return pw, auth.ValidPassword(pw)
}
