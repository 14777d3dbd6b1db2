-- Tenants whose customer differs from the previous build of int_tenants_resolved.
-- Reads model_output (this build) and previous_map (the build before; empty on the first).
select coalesce(now_map.tenant_id, previous.tenant_id) as tenant_id
from model_output as now_map
full outer join previous_map as previous on now_map.tenant_id = previous.tenant_id
where now_map.customer_key is distinct from previous.customer_key
