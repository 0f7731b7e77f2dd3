// `config dump`: the running Config as JSON, keys named as in the TOML file
// (docs/control-protocol.md), written service by service (reply_stream.hpp).
// Control thread only.
#pragma once

#include <nlohmann/json.hpp>

#include "control/admin/reply_stream.hpp"
#include "control/config/config.hpp"

namespace podgate::ctl {

// Everything but the services ("services" is an empty array).
nlohmann::json config_fields_json(const Config& config);

// The `config dump` reply's fields: {"config": ...}, its services (and each
// one's endpoints) written one by one.
LongReply config_dump(const Config& config);
// `config toml`: what `config save` would write, as the reply's "toml"
// string, written service by service; `fields` are the reply's others.
LongReply config_toml(const Config& config, nlohmann::json fields);

// The whole Config as one JSON value (what config_dump() writes).
nlohmann::json config_to_json(const Config& config);

}  // namespace podgate::ctl
