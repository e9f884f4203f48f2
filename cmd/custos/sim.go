package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/custos-nvr/custos/internal/media"
	"github.com/custos-nvr/custos/internal/sim"
)

func lookupEnv(k string) string { return os.Getenv(k) }

// runSim implements "custos sim": simulated cameras on an RTSP server.
func runSim(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8554", "address to serve RTSP on (port 0 picks a free one)")
	cameras := fs.Int("cameras", 4, "number of cameras, served at /cam1 … /camN and /camK/sub")
	codec := fs.String("codec", "h264", "main stream codec: h264 or h265 (sub-streams are H.264)")
	speed := fs.Float64("speed", 1, "pace factor: 10 sends ten seconds of video per second")
	user := fs.String("user", "", "require Digest authentication with this user")
	pass := fs.String("pass", "", "password for --user (or CUSTOS_SIM_PASSWORD)")
	if err := parseNoArgs(e, fs, args, "sim [--listen ADDR] [--cameras N] [--codec h264|h265] [--speed X] [--user U --pass P]"); err != nil {
		return err
	}
	if *pass == "" {
		*pass = lookupEnv("CUSTOS_SIM_PASSWORD")
	}
	s, err := sim.New(sim.Options{Cameras: *cameras, Codec: media.Codec(*codec), Speed: *speed,
		User: *user, Pass: *pass, Logger: e.log})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	addr := ln.Addr().String()
	for _, st := range s.Streams() {
		e.log.Info("sim: stream", "path", st.Path, "codec", st.Codec, "size", fmt.Sprintf("%dx%d", st.Width, st.Height),
			"fps", st.FPS, "kbps", st.BitrateBps/1000)
	}
	fmt.Fprintf(e.stdout, "serving %d simulated cameras at rtsp://%s/cam1 … rtsp://%s/cam%d (sub-streams at /camK/sub)\n",
		*cameras, addr, addr, *cameras)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	select {
	case <-ctx.Done():
		s.Close()
		<-errc
		return nil
	case err := <-errc:
		s.Close()
		return err
	}
}
