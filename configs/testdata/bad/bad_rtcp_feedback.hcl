zone "pbx" {
  listen = ["udp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8"]
  media {
    srtp          = "off"
    rtcp_feedback = "yes"
  }
}
