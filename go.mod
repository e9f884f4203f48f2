module github.com/custos-nvr/custos

go 1.26.8

require (
	github.com/pion/randutil v0.1.0 // indirect
	github.com/pion/rtcp v1.2.20 // indirect
	github.com/pion/rtp v1.10.6 // indirect
	github.com/pion/sdp/v3 v3.0.20 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
