zone "pbx" {
  listen = ["udp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "off" }
}
route "r" {
  from      = "pbx"
  to        = "pbx"
  target    = "sip:127.0.0.1:5070"
  max_calls = 0
}
media { address = "127.0.0.1" }
