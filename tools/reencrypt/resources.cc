#include "tools/reencrypt/resources.h"

#include "base/status.h"
#include "fmt/format.h"

namespace kmsplugin::reencrypt {
namespace {

struct BuiltIn {
  const char* resource;
  const char* group;
  const char* path;
};

// Built-in resources (kube-apiserver's registry storage). Anything else with a dotted group is
// a custom or aggregated resource stored under "<group>/<plural>".
constexpr BuiltIn kBuiltIns[] = {
    {"pods", "", "pods"},
    {"configmaps", "", "configmaps"},
    {"secrets", "", "secrets"},
    {"serviceaccounts", "", "serviceaccounts"},
    {"namespaces", "", "namespaces"},
    {"persistentvolumes", "", "persistentvolumes"},
    {"persistentvolumeclaims", "", "persistentvolumeclaims"},
    {"events", "", "events"},
    {"limitranges", "", "limitranges"},
    {"resourcequotas", "", "resourcequotas"},
    {"podtemplates", "", "podtemplates"},
    {"replicationcontrollers", "", "controllers"},
    {"nodes", "", "minions"},
    {"services", "", "services/specs"},
    {"endpoints", "", "services/endpoints"},
    {"deployments", "apps", "deployments"},
    {"daemonsets", "apps", "daemonsets"},
    {"replicasets", "apps", "replicasets"},
    {"statefulsets", "apps", "statefulsets"},
    {"controllerrevisions", "apps", "controllerrevisions"},
    {"jobs", "batch", "jobs"},
    {"cronjobs", "batch", "cronjobs"},
    {"horizontalpodautoscalers", "autoscaling", "horizontalpodautoscalers"},
    {"ingresses", "networking.k8s.io", "ingress"},
    {"ingressclasses", "networking.k8s.io", "ingressclasses"},
    {"networkpolicies", "networking.k8s.io", "networkpolicies"},
    {"poddisruptionbudgets", "policy", "poddisruptionbudgets"},
    {"clusterroles", "rbac.authorization.k8s.io", "clusterroles"},
    {"clusterrolebindings", "rbac.authorization.k8s.io", "clusterrolebindings"},
    {"roles", "rbac.authorization.k8s.io", "roles"},
    {"rolebindings", "rbac.authorization.k8s.io", "rolebindings"},
    {"priorityclasses", "scheduling.k8s.io", "priorityclasses"},
    {"storageclasses", "storage.k8s.io", "storageclasses"},
    {"volumeattachments", "storage.k8s.io", "volumeattachments"},
    {"csidrivers", "storage.k8s.io", "csidrivers"},
    {"csinodes", "storage.k8s.io", "csinodes"},
    {"csistoragecapacities", "storage.k8s.io", "csistoragecapacities"},
    {"leases", "coordination.k8s.io", "leases"},
    {"certificatesigningrequests", "certificates.k8s.io", "certificatesigningrequests"},
    {"mutatingwebhookconfigurations", "admissionregistration.k8s.io",
     "mutatingwebhookconfigurations"},
    {"validatingwebhookconfigurations", "admissionregistration.k8s.io",
     "validatingwebhookconfigurations"},
    {"validatingadmissionpolicies", "admissionregistration.k8s.io", "validatingadmissionpolicies"},
    {"validatingadmissionpolicybindings", "admissionregistration.k8s.io",
     "validatingadmissionpolicybindings"},
    {"endpointslices", "discovery.k8s.io", "endpointslices"},
    {"runtimeclasses", "node.k8s.io", "runtimeclasses"},
    {"flowschemas", "flowcontrol.apiserver.k8s.io", "flowschemas"},
    {"prioritylevelconfigurations", "flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"},
    {"customresourcedefinitions", "apiextensions.k8s.io",
     "apiextensions.k8s.io/customresourcedefinitions"},
    {"apiservices", "apiregistration.k8s.io", "apiregistration.k8s.io/apiservices"},
    // Newer built-ins: the default prefix (the plural) even though the group has dots.
    {"ipaddresses", "networking.k8s.io", "ipaddresses"},
    {"servicecidrs", "networking.k8s.io", "servicecidrs"},
    {"volumeattributesclasses", "storage.k8s.io", "volumeattributesclasses"},
    {"mutatingadmissionpolicies", "admissionregistration.k8s.io", "mutatingadmissionpolicies"},
    {"mutatingadmissionpolicybindings", "admissionregistration.k8s.io",
     "mutatingadmissionpolicybindings"},
    {"clustertrustbundles", "certificates.k8s.io", "clustertrustbundles"},
    {"leasecandidates", "coordination.k8s.io", "leasecandidates"},
    {"storageversions", "internal.apiserver.k8s.io", "storageversions"},
    {"storageversionmigrations", "storagemigration.k8s.io", "storageversionmigrations"},
    {"deviceclasses", "resource.k8s.io", "deviceclasses"},
    {"resourceclaims", "resource.k8s.io", "resourceclaims"},
    {"resourceclaimtemplates", "resource.k8s.io", "resourceclaimtemplates"},
    {"resourceslices", "resource.k8s.io", "resourceslices"},
};

std::string NormalizePrefix(std::string_view etcd_prefix) {
  std::string p(etcd_prefix);
  while (!p.empty() && p.back() == '/') p.pop_back();
  return p;
}

// The group/resource stored under "<path-segment>/..." (second segment needed for "services"
// and for dotted custom-resource groups). Returns the path consumed in `*path`.
GroupResource FromPath(std::string_view first, std::string_view second, std::string* path) {
  for (const BuiltIn& b : kBuiltIns) {
    std::string_view p = b.path;
    size_t slash = p.find('/');
    if (slash == std::string_view::npos) {
      if (p == first) {
        *path = std::string(first);
        return GroupResource{b.resource, b.group};
      }
    } else if (p.substr(0, slash) == first && p.substr(slash + 1) == second) {
      *path = std::string(p);
      return GroupResource{b.resource, b.group};
    }
  }
  if (first.find('.') != std::string_view::npos && !second.empty()) {
    *path = fmt::format("{}/{}", first, second);
    return GroupResource{std::string(second), std::string(first)};
  }
  *path = std::string(first);
  return GroupResource{std::string(first), ""};
}

}  // namespace

std::string EtcdPathFor(const GroupResource& gr) {
  for (const BuiltIn& b : kBuiltIns) {
    if (gr.resource == b.resource && gr.group == b.group) return b.path;
  }
  // events.k8s.io/events share the core events storage.
  if (gr.resource == "events" && gr.group == "events.k8s.io") return "events";
  if (gr.group.find('.') != std::string::npos) return fmt::format("{}/{}", gr.group, gr.resource);
  return gr.resource;
}

absl::StatusOr<ResourceTarget> ParseResourceTarget(std::string_view spec,
                                                   std::string_view etcd_prefix) {
  std::string_view name = spec;
  std::string path;
  size_t eq = spec.find('=');
  if (eq != std::string_view::npos) {
    name = spec.substr(0, eq);
    path = std::string(spec.substr(eq + 1));
    while (!path.empty() && path.back() == '/') path.pop_back();
    if (path.empty() || path.front() == '/') {
      return absl::InvalidArgumentError(
          fmt::format("resource \"{}\": the path after '=' must be relative and non-empty", spec));
    }
  }
  if (name.empty() || name.find('*') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        fmt::format("resource \"{}\": name a resource, not a wildcard", spec));
  }
  GroupResource gr = GroupResource::Parse(name);
  if (path.empty()) path = EtcdPathFor(gr);
  return ResourceTarget{gr, fmt::format("{}/{}/", NormalizePrefix(etcd_prefix), path)};
}

absl::StatusOr<std::vector<ResourceTarget>> DiscoverResources(EtcdClient* etcd,
                                                              std::string_view etcd_prefix) {
  const std::string root = NormalizePrefix(etcd_prefix) + "/";
  const std::string end = PrefixRangeEnd(root);
  std::vector<ResourceTarget> out;
  std::string start = root;
  while (true) {
    EtcdRangeOptions opts;
    opts.limit = 1;
    opts.keys_only = true;
    KMSP_ASSIGN_OR_RETURN(EtcdRangePage page, etcd->Range(start, end, opts));
    if (page.kvs.empty()) break;
    std::string_view rest = std::string_view(page.kvs[0].key).substr(root.size());
    size_t s1 = rest.find('/');
    std::string_view first = rest.substr(0, s1);
    std::string_view second;
    if (s1 != std::string_view::npos) {
      std::string_view after = rest.substr(s1 + 1);
      second = after.substr(0, after.find('/'));
    }
    std::string path;
    GroupResource gr = FromPath(first, second, &path);
    if (s1 == std::string_view::npos) {
      // A key directly under the prefix ("/registry/foo"): not a resource; skip it.
      start = std::string(page.kvs[0].key) + '\0';
      continue;
    }
    out.push_back(ResourceTarget{gr, root + path + "/"});
    start = PrefixRangeEnd(root + path + "/");
    // "services/..." other than specs/endpoints, or any unmatched second level: keep walking.
  }
  return out;
}

}  // namespace kmsplugin::reencrypt
