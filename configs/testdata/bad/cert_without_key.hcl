zone "a" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["127.0.0.0/8"]
  tls {
    cert_file = "a.pem"
  }
}

zone "b" {
  listen = ["tls://127.0.0.1:5071"]
  peers  = ["127.0.0.0/8"]
  tls {
    key_file = "b.key"
  }
}

route "r" {
  from   = "a"
  to     = "b"
  target = "sips:127.0.0.1:5062"
}

media {
  address = "127.0.0.1"
}
