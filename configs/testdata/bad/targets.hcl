zone "pbx" {
  listen = ["udp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "off" }
}
route "both" {
  from    = "pbx"
  to      = "pbx"
  target  = "sip:127.0.0.1:5070"
  targets = ["sip:127.0.0.1:5071"]
}
route "none" {
  from = "pbx"
  to   = "pbx"
}
route "mixed" {
  from    = "pbx"
  to      = "pbx"
  targets = ["sip:127.0.0.1:5070", "sip:127.0.0.1:5071;transport=tcp", "sip:127.0.0.1:5070", "sip:a@b"]
}
route "empty" {
  from            = "pbx"
  to              = "pbx"
  targets         = []
  attempt_timeout = "100ms"
}
route "slow" {
  from             = "pbx"
  to               = "pbx"
  targets          = ["sip:127.0.0.1:5070"]
  attempt_timeout  = "1m"
  options_interval = "10ms"
  resolver         = "dns.example"
}
media { address = "127.0.0.1" }
