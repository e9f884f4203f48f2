package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/integrity"
)

// runKey implements "custos key show --config FILE": the node's public
// signing key (what custos verify --key takes) and its fingerprint.
func runKey(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "show" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(e.stdout, "custos key show --config FILE [--pem]: print the node's public signing key")
			return flag.ErrHelp
		}
		return fmt.Errorf("%w: custos key show --config FILE [--pem]", errUsage)
	}
	fs := flag.NewFlagSet("key show", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "the YAML configuration custos serve uses")
	pemOut := fs.Bool("pem", false, "print the public key as PEM (PKIX) instead")
	if err := parseNoArgs(e, fs, args[1:], "key show --config FILE [--pem]"); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	pub, err := nodePublicKey(cfg)
	if err != nil {
		return err
	}
	if *pemOut {
		p, err := integrity.MarshalPublicKeyPEM(pub)
		if err != nil {
			return err
		}
		e.stdout.Write(p)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s\nfingerprint %s\n", integrity.PublicKeyString(pub), integrity.KeyFingerprint(pub))
	return nil
}

// secretKeyPath is the key file that seals the stored camera URLs and
// passwords (internal/secret), beside the node key.
func secretKeyPath(cfg *config.Config) string {
	return filepath.Join(cfg.DataDir, "keys", "secrets.key")
}
