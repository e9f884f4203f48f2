"""gstcamera.py: a GStreamer RTSP server standing in for an IP camera.

Run with Debian's /usr/bin/python3 (it needs python3-gi and
gir1.2-gst-rtsp-server-1.0). Serves one live test stream at /cam on
127.0.0.1, on a port chosen by the OS, over TCP and UDP.

Protocol with the parent (internal/testpeer/gstcamera.go):
  - on success it prints exactly one line "PORT <n>" on stdout, then serves;
  - when a GStreamer element it needs is missing it prints
    "MISSING <element>" and exits with status 3;
  - it exits on SIGTERM/SIGINT or when its stdin reaches end of file (so it
    does not outlive a parent that died without cleaning up).
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def missing(element):
    print("MISSING " + element, flush=True)
    sys.exit(3)


def have(element):
    return Gst.ElementFactory.find(element) is not None


def encoder(args):
    """Returns the encoder and payloader part of the launch line."""
    k = args.keyint
    if args.codec == "h264":
        if have("x264enc"):
            enc = (
                "x264enc speed-preset=ultrafast bframes=%d b-adapt=false "
                "key-int-max=%d bitrate=%d" % (args.bframes, k, args.bitrate)
            )
            # ultrafast turns off CABAC and 8x8 transforms (a Constrained
            # Baseline bitstream); turn them back on for a real High profile.
            enc += " cabac=true dct8x8=true"
            if args.bframes == 0:
                # zerolatency forces bframes=0, so only use it without them.
                enc += " tune=zerolatency"
            else:
                # Without zerolatency x264 buffers a look-ahead; keep it short.
                enc += " rc-lookahead=%d sync-lookahead=0" % (args.bframes + 1)
            # Trap: without a fixed profile downstream, x264enc inside the
            # RTSP media negotiates a baseline-compatible profile and silently
            # drops B-frames. Cameras mostly send High anyway.
            enc += " ! video/x-h264,profile=(string)high"
        elif have("openh264enc") and args.bframes == 0:
            enc = "openh264enc gop-size=%d bitrate=%d" % (k, args.bitrate * 1000)
        else:
            missing("x264enc")
        return enc + " ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1"
    if args.codec == "h265":
        if not have("x265enc"):
            missing("x265enc")
        # Closed GOPs (IDR key frames, as cameras send) instead of x265's
        # default CRA; no repeat-headers: rtph265pay's config-interval=-1
        # already puts VPS/SPS/PPS before every IRAP, and both would send
        # them twice.
        # --open-gop: x265's default, CRA key frames after the first whose
        # leading (RASL) pictures refer to the GOP before.
        opts = "bframes=%d:keyint=%d:min-keyint=%d:scenecut=0:open-gop=%d" % (
            args.bframes, k, k, 1 if args.open_gop else 0)
        enc = "x265enc speed-preset=ultrafast key-int-max=%d bitrate=%d option-string=\"%s\"" % (
            k, args.bitrate, opts)
        if args.bframes == 0:
            enc += " tune=zerolatency"
        return enc + " ! h265parse ! rtph265pay name=pay0 pt=96 config-interval=-1"
    print("unknown codec " + args.codec, file=sys.stderr, flush=True)
    sys.exit(2)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--codec", default="h264", choices=["h264", "h265"])
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--bframes", type=int, default=0)
    p.add_argument("--keyint", type=int, default=50)
    p.add_argument("--bitrate", type=int, default=1000, help="kbit/s")
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    p.add_argument("--auth", default="digest", choices=["digest", "basic"])
    p.add_argument("--shared", action="store_true")
    p.add_argument("--open-gop", action="store_true")
    p.add_argument("--protocols", default="udp,tcp", choices=["udp,tcp", "udp"])
    args = p.parse_args()

    Gst.init(None)
    for el in ("videotestsrc", "rtph264pay" if args.codec == "h264" else "rtph265pay"):
        if not have(el):
            missing(el)

    launch = (
        "( videotestsrc is-live=true pattern=ball "
        "! video/x-raw,width=%d,height=%d,framerate=%d/1 ! %s )"
        % (args.width, args.height, args.fps, encoder(args))
    )
    print("launch: " + launch, file=sys.stderr, flush=True)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service("0")

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(args.shared)
    if args.protocols == "udp":
        # A camera that refuses TCP interleaved (461 Unsupported Transport).
        factory.set_protocols(GstRtsp.RTSPLowerTrans.UDP)
    else:
        factory.set_protocols(GstRtsp.RTSPLowerTrans.UDP | GstRtsp.RTSPLowerTrans.TCP)

    if args.user:
        auth = GstRtspServer.RTSPAuth()
        user_token = GstRtspServer.RTSPToken()
        user_token.set_string("media.factory.role", "user")
        if args.auth == "basic":
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), user_token)
        else:
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(args.user, args.password, user_token)
        # Trap: a role without media.factory.access gets 404, not 401. Let
        # anonymous clients "see" the factory but not construct it, so the
        # server answers 401 with a challenge instead.
        anon_token = GstRtspServer.RTSPToken()
        anon_token.set_string("media.factory.role", "anonymous")
        auth.set_default_token(anon_token)
        server.set_auth(auth)

        perms = GstRtspServer.RTSPPermissions()
        perms.add_role_from_structure(Gst.Structure.from_string(
            "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")[0])
        perms.add_role_from_structure(Gst.Structure.from_string(
            "anonymous, media.factory.access=(boolean)true, media.factory.construct=(boolean)false")[0])
        factory.set_permissions(perms)

    server.get_mount_points().add_factory("/cam", factory)

    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print("attach failed", file=sys.stderr, flush=True)
        sys.exit(1)

    def quit_loop(*_):
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, quit_loop)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, quit_loop)

    def on_stdin(fd, cond):
        if cond & (GLib.IOCondition.HUP | GLib.IOCondition.ERR):
            return quit_loop()
        try:
            data = sys.stdin.buffer.raw.read(4096)
        except OSError:
            data = b""
        if not data:
            return quit_loop()
        return GLib.SOURCE_CONTINUE

    GLib.io_add_watch(sys.stdin.fileno(), GLib.PRIORITY_DEFAULT,
                      GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR, on_stdin)

    print("PORT %d" % server.get_bound_port(), flush=True)
    loop.run()


if __name__ == "__main__":
    main()
