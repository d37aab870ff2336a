# Several independent errors: all of them are reported in one pass.
zone "pbx" {
  listen = ["udp://pbx.local:5060"]
  peers  = ["10.0.0.1/8"]
  mode   = "audit"
  media { srtp = "sometimes" }
}

zone "carrier" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["127.0.0.0/8"]
  tls {
    min_version = "1.1"
    cert_file   = "c.pem"
    key_file    = "c.key"
    client_auth = "always"
  }
  media {
    key_exchange = ["zrtp"]
  }
}

route "outbound" {
  from   = "pbx"
  to     = "carrier"
  match  = "[0-9"
  target = "sips:alice@carrier.example"
}

media {
  address = "localhost"
  ports   = "30000-20000"
  timeout = "soon"
}

compliance {
  pseudonymize = "yes"
}

admin {
  listen = "localhost:9090"
}
