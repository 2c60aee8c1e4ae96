# Copyright (c) HashiCorp, Inc.
# SPDX-License-Identifier: MPL-2.0

path "secret/data/kv1" {
  capabilities = ["read"]
}