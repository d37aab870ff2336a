zone "pbx" {
  listen = ["udp://127.0.0.1:5060", "tcp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}

zone "phones" {
  listen = ["udp://127.0.0.1:5060", "tls://127.0.0.1:5060", "udp://[::1]:5060", "udp://[::1]:5060"]
  peers  = ["127.0.0.0/8"]
  tls {
    cert_file = "p.pem"
    key_file  = "p.key"
  }
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
