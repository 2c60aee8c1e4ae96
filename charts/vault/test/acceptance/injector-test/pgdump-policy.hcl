# Copyright (c) HashiCorp, Inc.
# SPDX-License-Identifier: MPL-2.0

path "database/creds/db-backup" {
  capabilities = ["read"]
}
