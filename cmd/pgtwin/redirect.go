package main

import (
	"os"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/twin"
)

// useRedirect gives running branches the kernel path (an nftables DNAT of
// their port to the postmaster's own listener) where this host allows it;
// elsewhere branch URLs go through the daemon's proxy. PGTWIN_REDIRECT=off
// keeps to the proxy: the tests set it, so they never touch the host's
// ruleset.
func useRedirect(tw *twin.Twin, cfg config.Config, log zerolog.Logger) {
	if os.Getenv("PGTWIN_REDIRECT") == "off" {
		log.Info().Msg("PGTWIN_REDIRECT=off: branch URLs go through the daemon's proxy")
		return
	}
	listen := cfg.Engine.ListenAddress
	if listen == "" {
		listen = "127.0.0.1"
	}
	r, err := engine.NewRedirect(listen)
	if err != nil {
		log.Info().Err(err).Msg("no kernel redirect; branch URLs go through the daemon's proxy")
		return
	}
	tw.UseRedirect(r)
	log.Info().Str("internal_address", r.Internal()).Msg("running branches are reached by kernel redirect (nftables table ip pgtwin)")
}
