zone "pbx" {
  listen = ["udp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}

route "user" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:alice@127.0.0.1:5070"
}

route "sips_udp" {
  from   = "pbx"
  to     = "pbx"
  target = "sips:trunk.example:5061;transport=udp"
}

route "scheme" {
  from   = "pbx"
  to     = "pbx"
  target = "tel:+15551234567"
}

route "slashes" {
  from   = "pbx"
  to     = "pbx"
  target = "sip://127.0.0.1"
}

route "param" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:127.0.0.1;lr"
}

route "port" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:127.0.0.1:99999"
}

route "ipv6" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:2001:db8::1:5060"
}

route "host" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:bad_host.example"
}

media {
  address = "127.0.0.1"
}
