zone "pbx" {
  listen = ["udp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "off" }
}
media {
  address      = "127.0.0.1"
  timeout      = "60s"
  hold_timeout = "30s"
}
