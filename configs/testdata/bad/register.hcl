zone "pbx" {
  listen = ["udp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8"]
}

zone "carrier" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["127.0.0.0/8"]
}

route "both" {
  from   = "pbx"
  to     = "carrier"
  target = "sips:trunk.carrier.example"
  auth {
    username      = "clinic"
    password_env  = "CARRIER_PASSWORD"
    password_file = "carrier.pass"
  }
}

route "neither" {
  from   = "pbx"
  to     = "carrier"
  target = "sips:trunk.carrier.example"
  auth {
    username = "clinic"
  }
}

route "noaor" {
  from   = "pbx"
  to     = "carrier"
  target = "sips:trunk.carrier.example"
  register {}
}

route "badreg" {
  from   = "pbx"
  to     = "carrier"
  target = "sips:trunk.carrier.example"
  auth {
    username      = "clinic"
    password_file = "missing.pass"
  }
  register {
    registrar = "sip:reg.carrier.example"
    aor       = "clinic@carrier.example"
    expires   = "10s"
  }
}

media {
  address = "127.0.0.1"
}
