# A trunk with two carrier SBCs in priority order, pinged with OPTIONS.
zone "lan" {
  listen = ["udp://10.0.0.5:5060"]
  peers  = ["10.0.0.0/8"]
  media { srtp = "off" }
}

zone "trunk" {
  listen = ["udp://192.0.2.10:5060"]
  peers  = ["198.51.100.0/24"]
  media { srtp = "off" }
}

route "out" {
  from             = "lan"
  to               = "trunk"
  targets          = ["sip:198.51.100.10", "sip:sbc2.carrier.example"]
  resolver         = "192.0.2.53:53"
  attempt_timeout  = "2s"
  options_interval = "30s"
}

media {
  address = "10.0.0.5"
}
