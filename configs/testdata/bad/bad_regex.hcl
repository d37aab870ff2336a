zone "pbx" {
  listen = ["udp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}

route "r" {
  from   = "pbx"
  to     = "pbx"
  match  = "^(\\+?[0-9]{3,15}$"
  target = "sip:127.0.0.1:5070"
}

media {
  address = "127.0.0.1"
}
