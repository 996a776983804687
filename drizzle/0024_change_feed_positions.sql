DROP INDEX "erasures_transaction_idx";--> statement-breakpoint
ALTER TABLE "identity_events" ADD COLUMN "transaction_id" bigint DEFAULT txid_current() NOT NULL;--> statement-breakpoint
CREATE INDEX "erasures_feed_idx" ON "erasures" USING btree ("transaction_id","id");--> statement-breakpoint
CREATE INDEX "identity_events_feed_idx" ON "identity_events" USING btree ("transaction_id","id");