// Custos live player: plays the MSE-over-WebSocket stream of live.ServeMSE
// in a <video> element. A classic script without dependencies; it defines
// window.CustosLive.
//
//   const p = CustosLive.play(video, "wss://host/api/.../live.mse", {maxLatency: 4});
//   p.state()  -> {state, error, codec, mime, width, height, messages, bytes,
//                  latency, jumps, reconnects, firstFrameAt, firstFrameMediaTime}
//   p.close()
//
// The protocol: a text message {"type":"init","codec","mime","width","height"}
// precedes each init segment; every binary message (init segment or one
// fragment) is appended to one SourceBuffer in arrival order. The media
// timeline does not start at 0 (a viewer joins a running stream), so the
// player seeks into the buffered range; it jumps to the live edge when it
// falls more than maxLatency seconds behind (after a stall or when the
// server made it skip frames) and plays slightly faster while it is more
// than targetLatency behind. It keeps keepSeconds of played video and
// removes older data. When the connection ends it reconnects with backoff
// (unless options.reconnect is false), with a fresh MediaSource.
// H.265 (hvc1) works where the browser decodes it; elsewhere state().error
// says the type is not supported.
(function (global) {
  "use strict";

  const defaults = {
    maxLatency: 4, // seconds behind the live edge before jumping to it
    targetLatency: 1, // seconds behind the live edge to aim for
    keepSeconds: 20, // seconds of played video kept in the buffer
    reconnect: true,
    maxReconnectDelay: 10000, // ms
    onState: null, // called with state() on every change of state or error
  };

  function play(video, url, options) {
    const o = Object.assign({}, defaults, options || {});
    const st = {
      state: "connecting", // connecting, waiting, playing, closed, error
      error: "",
      codec: "",
      mime: "",
      width: 0,
      height: 0,
      messages: 0,
      bytes: 0,
      latency: 0, // seconds between currentTime and the buffered end
      jumps: 0, // seeks to the live edge
      reconnects: 0,
      firstFrameAt: 0, // performance.now() when the first frame was shown
      firstFrameMediaTime: -1, // its media time (seconds)
    };
    let ws = null;
    let ms = null;
    let sb = null;
    let sbMime = "";
    let queue = []; // {op: "append", data} | {op: "changeType", mime} | {op: "remove", start, end}
    let closed = false;
    let retryDelay = 500;
    let retryTimer = 0;
    let timer = 0;

    function set(state, error) {
      if (error && !st.error) {
        st.error = error;
      }
      st.state = error ? "error" : state;
      if (o.onState) {
        try {
          o.onState(snapshot());
        } catch (e) {
          /* the page's problem */
        }
      }
    }

    function snapshot() {
      return Object.assign({}, st);
    }

    function watchFirstFrame() {
      const mark = function (now, meta) {
        if (st.firstFrameAt === 0) {
          st.firstFrameAt = now;
          st.firstFrameMediaTime = meta && typeof meta.mediaTime === "number" ? meta.mediaTime : video.currentTime;
        }
        if (!st.error) set("playing");
      };
      if (typeof video.requestVideoFrameCallback === "function") {
        video.requestVideoFrameCallback(mark);
      } else {
        video.addEventListener("playing", function () { mark(performance.now(), null); }, { once: true });
      }
    }

    function connect() {
      ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      ws.onopen = function () {
        retryDelay = 500;
        set("waiting");
      };
      ws.onmessage = function (ev) {
        if (typeof ev.data === "string") {
          let m;
          try {
            m = JSON.parse(ev.data);
          } catch (e) {
            return;
          }
          if (m.type === "init") {
            onInit(m);
          }
          return;
        }
        st.messages++;
        st.bytes += ev.data.byteLength;
        queue.push({ op: "append", data: ev.data });
        pump();
      };
      ws.onclose = function () {
        ws = null;
        if (closed || st.state === "error") {
          return;
        }
        teardown();
        if (!o.reconnect) {
          set("closed");
          return;
        }
        set("connecting");
        st.reconnects++;
        retryTimer = setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, o.maxReconnectDelay);
      };
    }

    function onInit(m) {
      if (!global.MediaSource || !MediaSource.isTypeSupported(m.mime)) {
        set("error", "this browser cannot play " + m.mime);
        if (ws) ws.close();
        return;
      }
      st.codec = m.codec;
      st.mime = m.mime;
      st.width = m.width;
      st.height = m.height;
      if (!ms) {
        ms = new MediaSource();
        sbMime = m.mime;
        const src = URL.createObjectURL(ms);
        ms.addEventListener("sourceopen", function () {
          URL.revokeObjectURL(src);
          try {
            sb = ms.addSourceBuffer(sbMime);
          } catch (e) {
            set("error", "addSourceBuffer(" + sbMime + "): " + e.name + ": " + e.message);
            return;
          }
          sb.mode = "segments";
          sb.addEventListener("updateend", pump);
          sb.addEventListener("error", function () { set("error", "SourceBuffer error"); });
          pump();
        }, { once: true });
        video.src = src;
        watchFirstFrame();
        video.play().catch(function () {});
      } else if (m.mime !== sbMime) {
        queue.push({ op: "changeType", mime: m.mime });
        sbMime = m.mime;
      }
    }

    function pump() {
      if (!sb || sb.updating || closed) {
        return;
      }
      while (queue.length > 0 && !sb.updating) {
        const q = queue[0];
        try {
          if (q.op === "append") {
            sb.appendBuffer(q.data);
          } else if (q.op === "remove") {
            if (q.end > q.start) sb.remove(q.start, q.end);
          } else if (q.op === "changeType") {
            sb.changeType(q.mime);
          }
          queue.shift();
        } catch (e) {
          if (e.name === "QuotaExceededError") {
            // Full: drop what was played and try again after that.
            const t = video.currentTime;
            if (sb.buffered.length > 0 && t - 1 > sb.buffered.start(0)) {
              sb.remove(sb.buffered.start(0), t - 1);
              return;
            }
          }
          set("error", q.op + ": " + e.name + ": " + e.message);
          return;
        }
      }
      if (!sb.updating) {
        maintain();
      }
    }

    // maintain keeps the playhead in the buffered data near the live edge
    // and trims played data. It runs after appends and on a timer.
    function maintain() {
      if (!sb || closed) {
        return;
      }
      const b = video.buffered;
      if (b.length === 0) {
        return;
      }
      const last = b.length - 1;
      const start = b.start(last);
      const end = b.end(last);
      const t = video.currentTime;
      // playingOld: the playhead is in an older range with data left.
      let playingOld = false;
      for (let i = 0; i < last; i++) {
        if (t >= b.start(i) && t < b.end(i) - 0.3) playingOld = true;
      }
      st.latency = end - t;
      if ((t < start - 0.05 && !playingOld) || end - t > o.maxLatency) {
        // Start (or restart) where a key frame is: the start of the last
        // range, unless that is too far behind the edge.
        let to = start;
        if (end - start > o.maxLatency) {
          to = end - o.targetLatency;
        }
        video.currentTime = to;
        if (st.firstFrameAt !== 0) st.jumps++;
        video.play().catch(function () {});
      } else if (!video.paused) {
        const rate = end - t > o.targetLatency + 0.5 ? 1.1 : 1.0;
        if (video.playbackRate !== rate) video.playbackRate = rate;
      }
      if (b.length > 0 && t - b.start(0) > o.keepSeconds + 10 && !queue.some(function (q) { return q.op === "remove"; })) {
        queue.push({ op: "remove", start: b.start(0), end: t - o.keepSeconds });
      }
    }

    function teardown() {
      queue = [];
      sb = null;
      if (ms && ms.readyState === "open") {
        try {
          ms.endOfStream();
        } catch (e) {
          /* closing anyway */
        }
      }
      ms = null;
      sbMime = "";
      video.removeAttribute("src");
      video.load();
    }

    video.addEventListener("error", function () {
      // Ignore the error of an emptied element (teardown).
      if (closed || !video.error || video.getAttribute("src") === null) return;
      set("error", "media error " + video.error.code + (video.error.message ? ": " + video.error.message : ""));
      if (ws) ws.close();
    });
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    timer = setInterval(maintain, 500);
    connect();

    return {
      state: snapshot,
      close: function () {
        closed = true;
        clearInterval(timer);
        clearTimeout(retryTimer);
        if (ws) ws.close();
        teardown();
        set("closed");
      },
    };
  }

  // playWebRTC plays the WHEP endpoint of live.ServeWHEP (H.264 only) in
  // video, over WebRTC: one recvonly video transceiver, the offer POSTed
  // with all ICE candidates (no trickle), the answer applied. It returns
  // the same {state(), close()} shape as play; state() is {state, error,
  // width, height, firstFrameAt, firstFrameMediaTime, session}, state one
  // of connecting, waiting, playing, closed, error. An answer of 4xx/5xx
  // sets state "error" with the server's status and message (e.g. 415 for
  // an H.265 stream). close() ends the session on the server (DELETE).
  // No reconnection: call playWebRTC again after an error.
  const webrtcDefaults = {
    gatherTimeout: 5000, // ms to wait for ICE gathering
    onState: null, // called with state() on every change of state or error
  };

  function playWebRTC(video, whepURL, options) {
    const o = Object.assign({}, webrtcDefaults, options || {});
    const st = {
      state: "connecting",
      error: "",
      width: 0,
      height: 0,
      firstFrameAt: 0, // performance.now() when the first frame was shown
      firstFrameMediaTime: -1, // video.currentTime then (seconds)
      session: "", // the session URL (Location)
    };
    let pc = null;
    let closed = false;

    function snapshot() {
      return Object.assign({}, st);
    }
    function set(state, error) {
      if (st.state === "closed" || (st.state === "error" && state !== "closed")) return;
      st.state = state;
      if (error) st.error = error;
      if (o.onState) {
        try { o.onState(snapshot()); } catch (e) { /* the caller's problem */ }
      }
    }
    function fail(msg) {
      set("error", msg);
      if (pc) pc.close();
    }
    function onFrame() {
      if (closed) return;
      if (st.firstFrameAt === 0 && video.videoWidth > 0) {
        st.firstFrameAt = performance.now();
        st.firstFrameMediaTime = video.currentTime;
        st.width = video.videoWidth;
        st.height = video.videoHeight;
        set("playing");
      }
      if (st.firstFrameAt === 0) {
        if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
        else setTimeout(onFrame, 50);
      }
    }

    async function start() {
      pc = new RTCPeerConnection({ iceServers: [] });
      pc.addTransceiver("video", { direction: "recvonly" });
      pc.ontrack = function (ev) {
        video.srcObject = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
        const p = video.play();
        if (p && p.catch) p.catch(function () { /* autoplay: muted, retried by the browser */ });
        if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
        else setTimeout(onFrame, 50);
      };
      pc.onconnectionstatechange = function () {
        if (closed) return;
        const s = pc.connectionState;
        if (s === "connected" && st.state === "connecting") set("waiting");
        else if (s === "failed") fail("WebRTC connection failed");
        else if (s === "closed") set("closed");
      };
      await pc.setLocalDescription(await pc.createOffer());
      if (pc.iceGatheringState !== "complete") {
        await new Promise(function (resolve) {
          const t = setTimeout(resolve, o.gatherTimeout);
          pc.addEventListener("icegatheringstatechange", function () {
            if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
          });
        });
      }
      if (closed) return;
      const resp = await fetch(whepURL, {
        method: "POST",
        headers: { "Content-Type": "application/sdp" },
        body: pc.localDescription.sdp,
      });
      const text = await resp.text();
      if (!resp.ok) {
        throw new Error("WHEP server answered " + resp.status + ": " + text.trim());
      }
      const loc = resp.headers.get("Location");
      // document.baseURI, not location.href: a kiosk's login stays in the
      // latter, and fetch() refuses URLs with credentials.
      if (loc) st.session = new URL(loc, new URL(whepURL, document.baseURI)).href;
      if (closed) { hangUp(); return; }
      await pc.setRemoteDescription({ type: "answer", sdp: text });
    }

    function hangUp() {
      if (st.session) {
        fetch(st.session, { method: "DELETE", keepalive: true }).catch(function () {});
      }
    }

    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    start().catch(function (e) {
      if (!closed) fail(String(e && e.message ? e.message : e));
    });

    return {
      state: snapshot,
      close: function () {
        if (closed) return;
        closed = true;
        hangUp();
        if (pc) pc.close();
        video.srcObject = null;
        set("closed");
      },
    };
  }

  global.CustosLive = { play: play, playWebRTC: playWebRTC };
})(window);
