#!/usr/bin/env bash
# make-fixtures.sh encodes the looped clips that the RTSP camera simulator
# (internal/sim) embeds, into internal/sim/fixtures/:
#
#   main.h264  1920x1080  H.264 High, ~2.4 Mbit/s
#   sub.h264    640x360   H.264 Main, ~400 kbit/s
#   main.h265  1920x1080  H.265 Main, ~1.5 Mbit/s
#
# Every clip: raw Annex B elementary stream, 25 fps, exactly 250 frames
# (10 s), closed GOP of 50 frames (2 s, key frames at 0, 50, ..., 200), no
# B-frames, parameter sets repeated before every key frame, VUI timing info
# present. The picture is ffmpeg's testsrc2 pattern with the frame number
# (0..249) drawn large in the top-left corner, plus light temporal noise so
# bitrates resemble a real camera. The last frame is a P-frame, so the loop
# point (249 -> 0) is a P -> IDR transition.
#
# Needs ffmpeg with libx264, libx265 and (preferably) drawtext + a font.
# Output is deterministic for a given ffmpeg/x264/x265 build, but not across
# builds: regenerate only when a clip must change, and commit the result.
#
# Usage: scripts/make-fixtures.sh [OUTDIR]   (default internal/sim/fixtures)
set -euo pipefail

cd "$(dirname "$0")/.."
out="${1:-internal/sim/fixtures}"
mkdir -p "$out"

frames=250
fps=25
gop=50

font=""
for f in /usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf \
         /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf \
         /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf; do
	if [[ -r "$f" ]]; then font="$f"; break; fi
done

# Not a pipe into grep -q: under pipefail an early exit of grep fails it.
filters=$(ffmpeg -hide_banner -filters 2>/dev/null || true)
have_drawtext=no
if [[ "$filters" == *" drawtext "* ]]; then have_drawtext=yes; fi
echo "drawtext: $have_drawtext, font: ${font:-none}"

# video_filter W H: the source picture, W x H.
video_filter() {
	local w=$1 h=$2 size=$(( $2 / 6 ))
	local src="testsrc2=size=${w}x${h}:rate=${fps}"
	local noise="noise=alls=${NOISE:-10}:allf=t"
	if [[ -n "$font" && "$have_drawtext" == yes ]]; then
		echo "${src},${noise},drawtext=fontfile=${font}:text='%{frame_num}':x=20:y=20:fontsize=${size}:fontcolor=white:box=1:boxcolor=black@0.8:boxborderw=10,format=yuv420p"
	else
		# Without drawtext, testsrc draws the time in seconds to 1/100 s
		# (frame number = seconds x 25).
		echo "testsrc=size=${w}x${h}:rate=${fps}:decimals=2,${noise},format=yuv420p"
	fi
}

# enc264 W H KBPS PROFILE FILE
enc264() {
	local w=$1 h=$2 kbps=$3 profile=$4 file=$5
	echo "encoding $file (H.264 $profile ${w}x${h} ${kbps} kbit/s)"
	ffmpeg -hide_banner -v error -y -f lavfi -i "$(video_filter "$w" "$h")" \
		-frames:v "$frames" -an \
		-c:v libx264 -preset medium -profile:v "$profile" -pix_fmt yuv420p \
		-b:v "${kbps}k" -maxrate "${kbps}k" -bufsize "$(( kbps * 2 ))k" \
		-g "$gop" -keyint_min "$gop" -sc_threshold 0 -bf 0 \
		-x264-params "keyint=${gop}:min-keyint=${gop}:scenecut=0:bframes=0:open-gop=0:repeat-headers=1:force-cfr=1" \
		-f h264 "$file"
}

# enc265 W H KBPS FILE
enc265() {
	local w=$1 h=$2 kbps=$3 file=$4
	echo "encoding $file (H.265 Main ${w}x${h} ${kbps} kbit/s)"
	ffmpeg -hide_banner -v error -y -f lavfi -i "$(video_filter "$w" "$h")" \
		-frames:v "$frames" -an \
		-c:v libx265 -preset fast -profile:v main -pix_fmt yuv420p \
		-b:v "${kbps}k" -g "$gop" -keyint_min "$gop" -bf 0 \
		-x265-params "log-level=error:keyint=${gop}:min-keyint=${gop}:scenecut=0:bframes=0:open-gop=0:repeat-headers=1:vui-timing-info=1:vbv-maxrate=${kbps}:vbv-bufsize=$(( kbps * 2 ))" \
		-f hevc "$file"
}

enc264 1920 1080 2400 high "$out/main.h264"
enc264 640 360 400 main "$out/sub.h264"
enc265 1920 1080 1500 "$out/main.h265"

# Check every clip: decodes without errors, 250 frames, starts with a key
# frame, ends with a non-key frame.
status=0
for f in "$out"/main.h264 "$out"/sub.h264 "$out"/main.h265; do
	case "$f" in *.h264) fmt=h264 ;; *.h265) fmt=hevc ;; esac
	errs=$(ffmpeg -hide_banner -v error -f "$fmt" -i "$f" -f null - 2>&1 || true)
	n=$(ffprobe -v error -f "$fmt" -count_frames -select_streams v:0 \
		-show_entries stream=nb_read_frames -of csv=p=0 "$f")
	keys=$(ffprobe -v error -f "$fmt" -select_streams v:0 \
		-show_entries frame=key_frame -of csv=p=0 "$f" | tr -d ',\n')
	bytes=$(stat -c %s "$f")
	echo "$f: $bytes bytes, $(( bytes * 8 / 10 / 1000 )) kbit/s, $n frames, key frames at: $(echo "$keys" | grep -o . | grep -n 1 | cut -d: -f1 | awk '{printf "%d ", $1-1}')"
	if [[ -n "$errs" ]]; then echo "  decode errors: $errs"; status=1; fi
	if [[ "$n" != "$frames" ]]; then echo "  want $frames frames"; status=1; fi
	if [[ "${keys:0:1}" != 1 ]]; then echo "  first frame is not a key frame"; status=1; fi
	if [[ "${keys: -1}" != 0 ]]; then echo "  last frame is a key frame"; status=1; fi
done
exit "$status"
