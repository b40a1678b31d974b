// The files of web/, compiled in by cmake/EmbedFiles.cmake (the generated
// web_assets.cpp defines kWebAssets).
#pragma once

#include <cstddef>
#include <string_view>

namespace tcpstated {

struct WebAsset {
  std::string_view path;  // as served: "/", "/ui/app.js", ...
  std::string_view content_type;
  std::string_view body;
};

extern const WebAsset kWebAssets[];
extern const size_t kWebAssetCount;

}  // namespace tcpstated
