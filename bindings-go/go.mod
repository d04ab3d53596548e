module heartbeater

go 1.22
