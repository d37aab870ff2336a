# state_dir relative to the config directory, and ${config_dir} in it.
state_dir = "${config_dir}/../state"

zone "edge" {
  listen = ["tls://[::1]:5061"]
  peers  = ["::1"]
  tls {
    cert_file = "edge.pem"
    key_file  = "edge.key"
  }
}

route "loop" {
  from   = "edge"
  to     = "edge"
  target = "sips:edge.example"
}

media {
  address = "::1"
}
