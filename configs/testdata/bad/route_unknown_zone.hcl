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

route "outbound" {
  from   = "pbx"
  to     = "carier"
  target = "sips:127.0.0.1:5062"
}

route "inbound" {
  from   = "trunk"
  to     = "pbx"
  target = "sip:127.0.0.1:5070"
}

media {
  address = "127.0.0.1"
}
