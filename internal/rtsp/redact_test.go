package rtsp

import "testing"

// TestRedactURLQuery: credentials in query strings are redacted, in URLs
// and in messages holding them; other parameters are left alone.
func TestRedactURLQuery(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rtsp://cam/live?user=admin&password=hunter2", "rtsp://cam/live?user=admin&password=xxxxx"},
		{"rtsp://cam/live?user=admin&PassWord=hunter2&channel=1", "rtsp://cam/live?user=admin&PassWord=xxxxx&channel=1"},
		{"rtsp://cam/live?pwd=hunter2", "rtsp://cam/live?pwd=xxxxx"},
		{"rtsp://cam/live?PWD=hunter2", "rtsp://cam/live?PWD=xxxxx"},
		{"rtsp://cam/live?pass=hunter2;channel=2", "rtsp://cam/live?pass=xxxxx;channel=2"},
		{"rtsp://cam/live?passwd=hunter2", "rtsp://cam/live?passwd=xxxxx"},
		{"rtsp://cam/live?pw=hunter2", "rtsp://cam/live?pw=xxxxx"},
		{"rtsp://cam/live?token=abc.def", "rtsp://cam/live?token=xxxxx"},
		{"rtsp://cam/live?access_token=abc", "rtsp://cam/live?access_token=xxxxx"},
		{"rtsp://cam/live?KEY=abc", "rtsp://cam/live?KEY=xxxxx"},
		{"rtsp://cam/live?apikey=abc", "rtsp://cam/live?apikey=xxxxx"},
		{"rtsp://cam/live?auth=abc", "rtsp://cam/live?auth=xxxxx"},
		{"rtsp://cam/live?Authorization=abc", "rtsp://cam/live?Authorization=xxxxx"},
		{"rtsp://cam/live?secret=abc", "rtsp://cam/live?secret=xxxxx"},
		{"rtsp://cam/live?client_secret=a%20b", "rtsp://cam/live?client_secret=xxxxx"},
		{"rtsp://admin:hunter2@cam/live?password=hunter3", "rtsp://admin:xxxxx@cam/live?password=xxxxx"},
		{"rtsp://cam/live?user=admin&channel=1&subtype=0", "rtsp://cam/live?user=admin&channel=1&subtype=0"},
		{"rtsp://cam/live?password=", "rtsp://cam/live?password=xxxxx"},
		// Messages that do not parse as one URL: the value runs to white space
		// or a quote (a password may hold / or :).
		{`SETUP rtsp://cam/live?user=a&password=hunter2/trackID=1: server answered 400`, `SETUP rtsp://cam/live?user=a&password=xxxxx server answered 400`},
		{`dial "rtsp://cam/x?pwd=hunter2": refused`, `dial "rtsp://cam/x?pwd=xxxxx": refused`},
		{"no url here", "no url here"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
