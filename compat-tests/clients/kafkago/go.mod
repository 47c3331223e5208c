module sluice-compat/kafkago

go 1.26

require github.com/segmentio/kafka-go v0.4.51

require (
	github.com/klauspost/compress v1.15.9 // indirect
	github.com/pierrec/lz4/v4 v4.1.15 // indirect
)

require sluice.dev/compat/goharness v0.0.0

replace sluice.dev/compat/goharness => ../goharness
