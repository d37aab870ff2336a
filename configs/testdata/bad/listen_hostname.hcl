zone "pbx" {
  listen = [
    "udp://sbc.clinic.example:5060",
    "tcp://localhost",
    "tcp://127.0.0.1",
    "tls://[::1]",
    "udp://127.0.0.1:0",
    "udp://127.0.0.1:70000",
  ]
  peers = ["127.0.0.0/8"]
  media { srtp = "allow" }
}

route "r" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:127.0.0.1:5070"
}

media {
  address = "127.0.0.1"
}
