#include "tcpstated/web_ui.h"

#include "tcpstated/web_assets.h"

namespace tcpstated {

bool ServeWebUi(const std::string& path,
                const std::function<std::string()>& state_json,
                WebUiResponse* out) {
  if (path == kStateApiPath) {
    out->content_type = "application/json";
    out->body = state_json();
    out->headers = kWebUiSecurityHeaders;
    return true;
  }
  for (size_t i = 0; i < kWebAssetCount; ++i) {
    const WebAsset& asset = kWebAssets[i];
    if (asset.path != path) continue;
    out->content_type = std::string(asset.content_type);
    out->body = std::string(asset.body);
    out->headers = kWebUiSecurityHeaders;
    return true;
  }
  return false;
}

}  // namespace tcpstated
