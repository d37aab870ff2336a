zone "pbx" {
  listen = ["udp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}

zone "carrier" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["127.0.0.0/8"]
  tls {
    cert_file = "c.pem"
    key_file  = "c.key"
  }
}

# Mixed zone: TLS and UDP listeners, SDES allowed.
zone "staff" {
  listen = ["udp://127.0.0.1:5080", "tls://127.0.0.1:5081"]
  peers  = ["127.0.0.0/8"]
  tls {
    cert_file = "s.pem"
    key_file  = "s.key"
  }
}

route "outbound" {
  from   = "pbx"
  to     = "carrier"
  target = "sip:127.0.0.1:5062"
}

route "staff" {
  from   = "pbx"
  to     = "staff"
  target = "sip:127.0.0.1:5082;transport=tcp"
}

route "inbound" {
  from   = "carrier"
  to     = "pbx"
  target = "sip:127.0.0.1:5070"
}

media {
  address = "127.0.0.1"
}
