-- Violations (WARN): billing customers whose identity the systems disagree on (several CRM
-- accounts claim it, or CRM and billing name different accounts). The precedence rule in
-- int_billing_customers_resolved picked one; each pick is listed here for a human to confirm.
with

conflicts as (
    select
        billing_customer_id,
        crm_account_id as resolved_crm_account_id,
        resolved_by,
        conflict
    from model_output
    where conflict is not null
)

select * from conflicts
