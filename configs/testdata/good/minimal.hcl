# The smallest useful configuration: every default applies.
zone "lan" {
  listen = ["udp://10.0.0.5:5060"]
  peers  = ["10.0.0.0/8"]
  media { srtp = "off" }
}

route "all" {
  from   = "lan"
  to     = "lan"
  target = "sip:pbx.clinic.example"
}

media {
  address = "10.0.0.5"
}
