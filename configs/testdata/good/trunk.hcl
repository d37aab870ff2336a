# A carrier trunk that authenticates by registration.
zone "pbx" {
  listen = ["udp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8"]
}

zone "carrier" {
  listen = ["tls://127.0.0.1:5061"]
  peers  = ["192.0.2.0/24"]
}

route "outbound" {
  from   = "pbx"
  to     = "carrier"
  target = "sips:trunk.carrier.example"
  auth {
    username      = "clinic"
    password_file = "carrier.pass"
  }
  register {
    registrar = "sips:reg.carrier.example:5061"
    aor       = "sip:+15550100@carrier.example"
    expires   = "30m"
  }
}

route "second" {
  from   = "pbx"
  to     = "carrier"
  target = "sips:trunk2.carrier.example"
  auth {
    username     = "clinic2"
    password_env = "CARRIER_PASSWORD"
  }
  register {}
}

route "inbound" {
  from   = "carrier"
  to     = "pbx"
  target = "sip:127.0.0.1:5070"
}

media {
  address = "127.0.0.1"
}
