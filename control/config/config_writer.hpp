// Config -> TOML, for the control command `config save` (issue 4).
//
// config_to_toml() is the inverse of parse_config() (control/config/config.cpp): for
// any Config the parser can produce, parse_config(config_to_toml(c)) gives a
// Config whose members compare equal to c's, and writing that again gives the
// same bytes.  Every key is written, defaults included, in the order and
// shape of conf/podgate.toml, so a saved file reads like the reference one.
// The text is a pure function of the Config (no timestamps): two saves of the
// same state are byte-identical.
//
// write_file_atomically() replaces a file so that a crash at any moment
// leaves either the old contents or the new ones, never a mix.
#pragma once

#include <string>
#include <string_view>

#include "control/config/config.hpp"
#include "control/result.hpp"

namespace podgate::ctl {

// The whole Config as TOML in the schema parse_config() reads.  Config::source
// is not written (it names where a Config came from, not what it says).
//
// A key that means nothing for a service's shape is not written, because the
// parser rejects it there: cluster_ip, endpoints and maglev_table_size of an
// ExternalName service, external_name of a ClusterIP service,
// maglev_table_size of a headless one, timeout_seconds without ClientIP
// affinity.  Empty optional strings (a port's or endpoint's name, pod,
// hostname, subdomain) are left out too: the parser reads absence as "".
std::string config_to_toml(const Config& config);
// config_to_toml() in pieces, for a reply written over many loop turns:
// the text before the services, then each service's (with its leading
// blank line).  config_toml_head(c) + service_toml(s) for every s of
// c.services == config_to_toml(c).
std::string config_toml_head(const Config& config);
std::string service_toml(const ServiceConfig& service);

// A file mode as [control] mode writes it, and chmod takes it: "0660".
std::string file_mode_text(uint32_t mode);

// Replaces `path` with `text` (a symbolic link: the file it names, and the
// link stays): writes `path`.tmp.<pid> in the same directory (mode and
// owner of the existing file, else 0644 less the umask), fsyncs it, renames it
// over `path` and fsyncs the directory, so the rename itself is durable
// (rename(2) is atomic; without the fsyncs a crash could leave an empty file
// after the rename on ext4/xfs).  On failure the temporary file is removed and
// an ErrorCode::kIo error names the path and the reason; `path` is untouched
// unless only the final directory fsync failed (the error says so).
Result<void> write_file_atomically(const std::string& path, std::string_view text);

}  // namespace podgate::ctl
