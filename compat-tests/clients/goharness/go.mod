module sluice.dev/compat/goharness

go 1.26
